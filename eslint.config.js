// The TypeScript linter (npm run lint): typescript-eslint's recommended rules, promises that are neither awaited
// nor handled, and the layers of src/ with no import cycles (scripts/lint/layers.mjs, docs/ARCHITECTURE.md).
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";
import { plugin as stasis } from "./scripts/lint/layers.mjs";

export default tseslint.config(
  // What git ignores holds no code of ours (.venv has torch's own JavaScript): left alone, as prettier leaves it.
  {
    ignores: [
      "dist/",
      "node_modules/",
      ".gpu-bundle/",
      "python/",
      ".venv/",
      ".cache/",
      ".whl/",
      ".gl/",
      ".vllm-gpu/",
      ".mypy_cache/",
      ".ruff_cache/",
      ".pytest_cache/",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["src/**/*.ts"],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { stasis },
    rules: {
      // Prettier wraps code at 120 columns; this catches what it leaves alone: comments (and long names).
      "max-len": [
        "error",
        { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true },
      ],
      "stasis/layers": "error",
      "stasis/no-cycle": "error",
      // node:test's test() and describe() return promises that the runner itself awaits.
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["test", "describe", "it", "suite"] },
          ],
        },
      ],
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", ignoreRestSiblings: true, caughtErrors: "none" },
      ],
    },
  },
  {
    files: ["**/*.mjs", "**/*.js"],
    languageOptions: { globals: globals.node },
  },
);
