// Hold-to-talk on top of the (singleton) wx.getRecorderManager(): mp3, 16 kHz mono, what the
// server's speech recognition expects, at most 60 s.
const RECORD_OPTIONS = {
  duration: 60000,
  sampleRate: 16000,
  numberOfChannels: 1,
  encodeBitRate: 48000,
  format: "mp3",
};
const MIN_DURATION_MS = 1000;

const TEXT = {
  tooShort: "说话时间太短",
  denied: "需要麦克风权限，请在设置中允许使用麦克风",
  failed: "录音失败，请重试",
};

class HoldToTalk {
  constructor({ onRecorded, onError, onStateChange }) {
    this.onRecorded = onRecorded;
    this.onError = onError || function () {};
    this.onStateChange = onStateChange || function () {};
    this.manager = wx.getRecorderManager();
    this.recording = false;
    this.cancelled = false;
    this.manager.onStart(() => {
      this.recording = true;
      this.onStateChange(true);
    });
    this.manager.onStop((result) => this.stopped(result || {}));
    this.manager.onError((error) => {
      const denied = /auth|permission|deny/i.test((error && error.errMsg) || "");
      this.recording = false;
      this.onStateChange(false);
      this.onError(denied ? TEXT.denied : TEXT.failed);
    });
  }

  start() {
    this.cancelled = false;
    this.manager.start(RECORD_OPTIONS);
  }

  // Released: send it. cancel(): slid away, drop it.
  stop() {
    this.manager.stop();
  }

  cancel() {
    this.cancelled = true;
    this.manager.stop();
  }

  stopped(result) {
    this.recording = false;
    this.onStateChange(false);
    if (this.cancelled) return;
    if (!result.tempFilePath) {
      this.onError(TEXT.failed);
      return;
    }
    if ((result.duration || 0) < MIN_DURATION_MS) {
      this.onError(TEXT.tooShort);
      return;
    }
    this.onRecorded({
      filePath: result.tempFilePath,
      durationMs: Math.round(result.duration),
      fileSize: result.fileSize || 0,
    });
  }
}

module.exports = { HoldToTalk, MIN_DURATION_MS, RECORD_OPTIONS, TEXT };
