"""Runs kmock's Kubernetes API emulator on a loopback port for the tests.

kmock is a library with no server command; this wraps its emulator in a
process that binds a port, announces it (see _common.py) and serves.
"""

import asyncio

from _common import announce, exit_when_stdin_closes, parse_args


async def serve(host: str, port: int) -> None:
    import kmock

    emulator = kmock.KubernetesEmulator()
    # Without a resource list the emulator answers 404 for every kind; the bundled
    # one holds the built-in kinds of a recent cluster (Deployments included).
    emulator.resources.load_bundled()
    # Port 0 lets aiohttp bind any free port; Server.port then reports the real one.
    async with emulator, kmock.Server(emulator, host=host, port=port) as server:
        announce(host, server.port)
        await asyncio.Event().wait()


def main() -> None:
    args = parse_args(__doc__)
    exit_when_stdin_closes()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
