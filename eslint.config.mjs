import tseslint from "typescript-eslint";

export default tseslint.config({ ignores: ["node_modules/", "out/", "test/hosts/.cache/", ".ci/summary.js"] }, ...tseslint.configs.recommended, {
  rules: {
    // `||` turns 0 and false into defaults; the conventions ask for `??`
    "@typescript-eslint/prefer-nullish-coalescing": "off",
    "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" }],
    "no-restricted-syntax": [
      "error",
      { selector: "LogicalExpression[operator='||'] > Literal", message: "Use ?? for defaults: || also replaces 0, false and ''." },
    ],
  },
});
