from transformers import AutoProcessor, Florence2ForConditionalGeneration

from converters.florence2_vocab import FLORENCE2_ADDED_TOKENS
from converters.test_checkpoints import SIZES, build_config, build_tokenizer


def test_tiny_checkpoint_loads_like_a_real_one(tiny_checkpoint):
    model = Florence2ForConditionalGeneration.from_pretrained(tiny_checkpoint)
    processor = AutoProcessor.from_pretrained(tiny_checkpoint)
    tok = processor.tokenizer
    assert tok.convert_tokens_to_ids(["<s>", "<pad>", "</s>"]) == [0, 1, 2]
    loc0 = tok.convert_tokens_to_ids("<loc_0>")
    assert tok.convert_tokens_to_ids("<loc_999>") == loc0 + 999
    assert tok.convert_tokens_to_ids("<od>") == loc0 - 4
    assert processor.image_token_id == model.config.image_token_id == tok.convert_tokens_to_ids("<image>")
    assert tok.encode("<loc_5><poly>", add_special_tokens=False) == [loc0 + 5, tok.convert_tokens_to_ids("<poly>")]
    assert model.generation_config.forced_bos_token_id == 0
    assert processor.num_image_tokens == 5


def test_base_config_matches_published_sizes():
    tok = build_tokenizer()
    assert len(tok) == 1 + tok.convert_tokens_to_ids(FLORENCE2_ADDED_TOKENS[-1]) + 1
    config = build_config("base", tok)
    assert config.text_config.d_model == 768 and config.text_config.encoder_layers == 6
    assert config.text_config.vocab_size == 51328
    assert list(config.vision_config.embed_dim) == list(SIZES["base"]["vision_dims"])
    assert config.vision_config.projection_dim == 768
