"""The stand-in world: local HTTP hosts and generated data the tests and demos download from."""
