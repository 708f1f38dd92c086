"""The demo world: the synthetic scenes the demo model is trained and checked on, their metrics, and
`eval`. Nothing here is needed to run a published checkpoint."""
