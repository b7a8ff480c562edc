"""The reading area: the hanging, the image panes, overlays and the magnifier."""
