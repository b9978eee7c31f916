"""The lab's stack on loopback, cut by job: process supervision (process.py, parent_death.py),
ports (ports.py), command lines (command_lines.py, components.py) and the start order (stack.py)."""
