"""The runnable pipeline (`billing`) and the demo that runs it against the sandboxes."""
