// Unit tests run in jsdom (miniprogram-simulate renders WXML into a DOM); the integration test
// declares the node environment in its own file header.
module.exports = {
  testEnvironment: "jsdom",
  testMatch: ["<rootDir>/tests/**/*.test.js"],
  testTimeout: 20000,
};
