"""Text for the terminal: file names and messages made safe to print."""
