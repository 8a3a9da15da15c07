"""Entry point on the device (and under the unix port): ``micropython main.py [config.json]``."""
import json
import sys

from agent import Agent
from sensors import build


def main(path="config.json"):
    with open(path) as f:
        config = json.load(f)
    Agent(config, build(config.get("sensors", []))).run()


main(*sys.argv[1:2])
