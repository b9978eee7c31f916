"""What `daprlab up` adds to its stack, cut by job: the runner's lifetime and the faults it
carries out (runner.py), its control channel (control_channel.py), where an actor lives
(actor_placement.py), and its record and lock in the state directory (run_record.py)."""
