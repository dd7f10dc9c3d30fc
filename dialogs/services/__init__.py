"""Writes of the dialogs app, one module per subject; each rule lives where its write is.

- `conversations`: create / resume, update (status, priority, assignment), resolve, mark read
- `messages`: customer messages (idempotent by client_id), bot and agent replies
- `voicing`: queue and attach speech to a reply, mark it failed, the recovery sweep
- `phrases`: phrase variables, precompute, re-rendering when presets or the lexicon change
- `audit`: retention of audit rows
- `moderation`: the sensitive-word filter on customers' words and on replies
- `voice_messages`: customers' voice messages and their transcripts (the `asr` queue)
"""
