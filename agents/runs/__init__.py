"""Run directories and run specifications: ``files`` (the directory format) and ``spec`` (what a
run is: its arguments, runs and configs)."""
