"""Shared fixtures: keep tests off the network and out of the user's workspace."""
import os

os.environ.setdefault('IN_TEST', '1')
