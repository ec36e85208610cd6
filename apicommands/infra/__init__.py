"""infrastructure commands: what the web UI's dashboard and Infrastructure section read.

This server runs no hypervisors, so hosts, pods, clusters, system VMs, routers, instances,
networks and VPCs are honestly empty; zones, primary storage and its capacity are real.
"""
