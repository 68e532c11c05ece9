"""What an accepted mail does to the tickets: the processing stage.

:mod:`.pipeline` claims pending inbox rows and parses each once; :mod:`.inbound` runs the
inbound stages in their fixed order (docs/ARCHITECTURE.md); :mod:`.agentmail` handles an
authenticated agents
