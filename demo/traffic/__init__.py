"""The demo traffic generator behind ``manage.py demo_traffic``."""
