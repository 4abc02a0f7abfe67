"""Many processes: launching them (launch.py) and configuring the engines they train with (engines.py)."""
