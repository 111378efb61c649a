"""Prints the demo's vectors briefly: the first components and the size of each."""
import json
import sys

with open(sys.argv[1]) as f:
    for i, line in enumerate(f):
        v = json.loads(line)["embedding"]
        head = ", ".join(f"{x:+.4f}" for x in v[:6])
        print(f"document {i}: [{head}, ...] ({len(v)} dimensions)")
