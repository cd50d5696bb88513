"""speechft."""
