"""Korean BERT: tokenizer, pretraining, fine-tuning, prediction and evaluation."""
