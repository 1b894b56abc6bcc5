"""How old a client's view of the cluster may get. kafka-python 3.0.12's offset look-ups (end
offsets, a reset position) retry a "not the leader" answer without asking for new metadata, so
after a leader moved they wait for the next periodic refresh: 300 s by default, a stall of minutes
on a cluster. Every client of the project refreshes every 5 s instead; a metadata request per
client every 5 s costs nothing measurable."""

METADATA_MAX_AGE_MS = 5000
