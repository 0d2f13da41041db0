"""The web page (app.py): one model behind a lock, the page, thumbnails of indexed files."""
