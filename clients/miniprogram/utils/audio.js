// One voice at a time: a single InnerAudioContext shared by every bubble. Tapping the playing
// bubble stops it; tapping another one switches to it.
class VoicePlayer {
  constructor(onChange) {
    this.onChange = onChange || function () {};
    this.context = null;
    this.playingId = null;
  }

  ensureContext() {
    if (this.context) return this.context;
    const context = wx.createInnerAudioContext({ useWebAudioImplement: false });
    // Play through the speaker even when the phone is on silent: customers expect to hear replies.
    context.obeyMuteSwitch = false;
    context.onEnded(() => this.finished());
    context.onStop(() => this.finished());
    context.onError(() => this.finished(true));
    this.context = context;
    return context;
  }

  finished(failed) {
    const id = this.playingId;
    if (id === null) return;
    this.playingId = null;
    this.onChange(null, { endedId: id, failed: !!failed });
  }

  play(id, url) {
    if (!url) return;
    const context = this.ensureContext();
    if (this.playingId !== null) {
      const previous = this.playingId;
      this.playingId = null; // so the stop below does not report the new id as ended
      context.stop();
      this.onChange(null, { endedId: previous });
    }
    context.src = url;
    this.playingId = id;
    context.play();
    this.onChange(id, {});
  }

  stop() {
    if (this.playingId === null || !this.context) return;
    this.context.stop();
    this.finished();
  }

  toggle(id, url) {
    if (this.playingId === id) this.stop();
    else this.play(id, url);
  }

  destroy() {
    if (this.context) {
      this.context.destroy();
      this.context = null;
    }
    this.playingId = null;
  }
}

module.exports = { VoicePlayer };
