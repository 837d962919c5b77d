"""A migration kept in its iterative phase for rounds of guest and device
activity: the bandwidth cap, the ballast the first pass sends, and the
region the CPU dirties so that every round has something to send (the
churn and remap-race cases)."""

KEEPALIVE_GPA = 0x5000000       # CPU-dirtied to keep the migration iterating
KEEPALIVE_SIZE = 16 << 20      # ~250 ms of sending per round at the cap
BANDWIDTH = 64 << 20
BALLAST_GPA = 0x6000000
BALLAST_SIZE = 16 << 20
SYNC_TIMEOUT = 10.0             # seconds to wait for the next dirty sync
