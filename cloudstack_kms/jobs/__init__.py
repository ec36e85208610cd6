"""Async jobs: the ``async_job`` row is the queue, so jobs survive restarts and any server may run them."""
