// Unit tests run in jsdom (miniprogram-simulate renders WXML into a DOM). The integration test
// (node environment, declared in its file) needs a server: clients/tests/test_miniprogram.py
// starts one and sets CS_BASE_URL; without it `npm test` runs the unit tests only.
module.exports = {
  testEnvironment: "jsdom",
  testMatch: ["<rootDir>/tests/**/*.test.js"],
  testPathIgnorePatterns: process.env.CS_BASE_URL ? ["/node_modules/"] : ["/node_modules/", "/integration/"],
  testTimeout: 20000,
};
