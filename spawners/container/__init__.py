"""What the container backends (Docker, Podman) share: the engine interface, the container a
task becomes, the watch over the job's containers, their reaping, and the images spawnkit
builds."""
