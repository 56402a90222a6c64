"""The worker seen from Blender: which Python runs it (:mod:`.python`), the one warm process
started and stopped off the main thread (:mod:`.service`), and making or checking its
environment (:mod:`.setup`)."""
