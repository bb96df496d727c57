export { push, type PushOptions, type PushResult } from "../remote/push.js";
