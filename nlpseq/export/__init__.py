"""Models as files that run without nlpseq: ONNX or TorchScript, plus tokenizer and JSON.

``exporter`` writes them (torch); ``runtime`` runs an ONNX export with onnxruntime and
the tokenizer libraries only; ``checks`` tells whether an export is whole. Importing this
package imports neither torch nor onnxruntime.
"""
