/** The stasis version; also recorded in every manifest. Keep in step with package.json. */
export const VERSION = "0.1.0";
