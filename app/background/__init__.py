"""Work off the GUI thread: worker threads, the AI runner and the case loader."""
