"""The web chat: a Gradio app over the ``rag`` Python API (``rag ui``). Imports rag; rag never imports ui."""
