"""xpscratch's benchmark suite (not part of the installed package): see README.md here."""
