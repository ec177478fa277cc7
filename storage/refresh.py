"""``python -m storage.refresh CATALOG LAKE REGION ENDPOINT``: the catalog refresh the analyse process runs as a child.

It prints 1 when the catalog is current, 0 when not (storage.catalog.refresh_catalog's answer);
its warnings go to stderr, which the parent logs (storage/views.py).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from storage.catalog import refresh_catalog
from storage.lake import Lake


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    catalog, location, region, endpoint = argv
    refreshed = refresh_catalog(Path(catalog), Lake(location, s3_endpoint_url=endpoint or None, region=region))
    print("1" if refreshed else "0")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
