export { pull, type PullOptions, type PullResult } from "../remote/pull.js";
