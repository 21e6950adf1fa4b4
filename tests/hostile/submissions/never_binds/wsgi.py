"""HOSTILE: blocks forever at import (were it ever imported: the master never gets that far)."""

import time

time.sleep(10**6)
app = None
