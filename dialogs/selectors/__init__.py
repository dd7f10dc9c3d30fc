"""Reads of the dialogs app, one module per subject.

- `conversations`: permission-checked fetches, the console/customer/agent lists, conversation payloads
- `messages`: a conversation's messages, the bot reply that answered a message, message payloads
- `policy`: intent classification and the emotion policy
- `phrases`: canned phrase lookup, trigger matching and search
- `voice`: voice messages (the speech-recognition domain prompt)
"""
