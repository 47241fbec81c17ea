"""The HTTP server: the tornado application, its handlers and the pages it renders itself."""
