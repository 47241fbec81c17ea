"""What an uploaded or imported file must pass before the store takes it: names and archives."""
