const { createFakeWx } = require("../helpers/fake-wx");

let fake;

beforeEach(() => {
  jest.resetModules();
  fake = createFakeWx();
  global.wx = fake.wx;
});

describe("VoicePlayer", () => {
  test("one context for every bubble; switching stops the previous; the end clears the state", () => {
    const { VoicePlayer } = require("../../utils/audio");
    const changes = [];
    const player = new VoicePlayer((id, detail) => changes.push([id, detail.endedId || null]));
    player.toggle(1, "http://x/1.mp3");
    player.toggle(2, "http://x/2.mp3");
    expect(fake.audioContexts).toHaveLength(1);
    const context = fake.audioContexts[0];
    expect(context.obeyMuteSwitch).toBe(false);
    expect(context.calls).toEqual([["play", "http://x/1.mp3"], ["stop", "http://x/1.mp3"], ["play", "http://x/2.mp3"]]);
    context.end();
    expect(player.playingId).toBeNull();
    expect(changes).toEqual([[1, null], [null, 1], [2, null], [null, 2]]);
  });

  test("tap the playing bubble: stop; a playback error clears the state too; no URL: nothing", () => {
    const { VoicePlayer } = require("../../utils/audio");
    const player = new VoicePlayer();
    player.toggle(1, "http://x/1.mp3");
    player.toggle(1, "http://x/1.mp3");
    expect(player.playingId).toBeNull();
    player.play(2, "http://x/2.mp3");
    fake.audioContexts[0].handlers.error.forEach((fn) => fn({ errCode: 10002 }));
    expect(player.playingId).toBeNull();
    player.play(3, "");
    expect(player.playingId).toBeNull();
    player.destroy();
    expect(fake.audioContexts[0].calls.pop()).toEqual(["destroy"]);
  });
});

describe("HoldToTalk", () => {
  function make() {
    const { HoldToTalk, RECORD_OPTIONS } = require("../../utils/recorder");
    const got = { recorded: [], errors: [], states: [] };
    const recorder = new HoldToTalk({
      onRecorded: (r) => got.recorded.push(r),
      onError: (m) => got.errors.push(m),
      onStateChange: (s) => got.states.push(s),
    });
    return { recorder, got, RECORD_OPTIONS };
  }

  test("records mp3, 16 kHz mono, at most 60 s, and hands over the file", () => {
    const { recorder, got, RECORD_OPTIONS } = make();
    expect(RECORD_OPTIONS).toEqual({ duration: 60000, sampleRate: 16000, numberOfChannels: 1, encodeBitRate: 48000, format: "mp3" });
    recorder.start();
    expect(fake.recorder.started).toEqual([RECORD_OPTIONS]);
    recorder.stop();
    expect(got.recorded).toEqual([{ filePath: "wxfile://tmp/voice.mp3", durationMs: 2300, fileSize: 9000 }]);
    expect(got.states).toEqual([true, false]);
  });

  test("cancelled, too short, no file, microphone denied: nothing sent, Chinese messages", () => {
    const { recorder, got } = make();
    recorder.start();
    recorder.cancel();
    fake.recorder.result = { tempFilePath: "wxfile://a.mp3", duration: 999 };
    recorder.start();
    recorder.stop();
    fake.recorder.result = {};
    recorder.start();
    recorder.stop();
    fake.recorder.fail("operateRecorder:fail auth deny");
    fake.recorder.fail("operateRecorder:fail busy");
    expect(got.recorded).toEqual([]);
    expect(got.errors).toEqual(["说话时间太短", "录音失败，请重试", "需要麦克风权限，请在设置中允许使用麦克风", "录音失败，请重试"]);
  });
});
