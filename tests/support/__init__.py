"""What several test suites share: waiting with a deadline, emptying a stage's tables, reading
/proc, and looking at MySQL from the outside (its process list, a global setting put back)."""
