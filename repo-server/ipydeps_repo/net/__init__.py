"""The server side's HTTP client: one client, one verified download, the upload API client."""
