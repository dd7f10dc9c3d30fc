// The app only logs in early; the chat page owns the rest (and logs in itself if this failed).
const api = require("./utils/api");

App({
  onLaunch() {
    api.ensureLogin().catch(function () {
      // The chat page shows the reason and a retry button.
    });
  },
});
