"""What the tests share, one copy each.

- ``tripwire``: every socket a test opens may only reach 127.0.0.1 (armed in tests/conftest.py).
- ``envelope``: the OpenAI error envelope, checked exactly.
- ``imageserver``: an HTTP server on 127.0.0.1 that serves images to ``image_url`` fetches.
- ``requests``: ``EditRequest``s, JSON bodies and multipart bodies as clients build them.
- ``sse``: Server-Sent Events frames read as the SDKs read them.
- ``schema``: bodies and stream events validated against OpenAI's published schemas
  (vendored in ``openai_spec/``).
- ``sdk``: official-SDK calls whose raw answers are schema-checked before they are parsed.
- ``tools``: external programs (curl, node) that a test needs; missing ones fail under CI.

``tests/server.py`` (a real gateway process) and ``tests/imaging.py`` (real Pillow images) are
shared the same way and stay where they are.
"""
