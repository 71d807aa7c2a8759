"""The jobs the streaming runner drives: making masks (:mod:`.segment`) and applying them (:mod:`.apply`)."""
