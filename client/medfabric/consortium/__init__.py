"""The consortium as the client sees it: the topology, where its material lies, identities, Gateway connections."""
