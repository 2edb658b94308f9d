//! A model's own chat template: where a Hugging Face directory keeps it ([`ChatTemplate::from_hf_dir`];
//! a GGUF file's is `tokenizer.chat_template`, `super::spec`), and rendering a conversation
//! with it ([`ChatTemplate::render`]) into the text that is then tokenized, special tokens and all.
//!
//! Rendering follows transformers' `apply_chat_template` (`transformers/utils/chat_template_utils.py`,
//! `_compile_jinja_template`): Jinja with `trim_blocks` and `lstrip_blocks`, loop controls,
//! `raise_exception(message)`, and the variables `messages`, `add_generation_prompt`,
//! `bos_token` and `eos_token`. The engine is `minijinja`; `minijinja-contrib`'s `pycompat`
//! gives the Python string and dict methods templates call (`.strip()`, `.startswith()`, `.items()`).

use crate::error::{Error, IoContext, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The file in a Hugging Face directory that holds the chat template (transformers >= 4.43
/// writes it beside `tokenizer_config.json`, and reads it first).
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";
/// The file in a Hugging Face directory whose `chat_template`, `bos_token` and `eos_token` keys are read.
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";

/// A chat template and the text of the special tokens it may write.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatTemplate {
    /// The Jinja source.
    pub source: String,
    /// The text of the beginning-of-sequence token (`bos_token`), empty when there is none.
    pub bos_token: String,
    /// The text of the end-of-sequence token (`eos_token`), empty when there is none.
    pub eos_token: String,
    /// The file it came from, for errors.
    pub origin: PathBuf,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message { role: role.to_string(), content: content.to_string() }
    }
}

impl ChatTemplate {
    /// The chat template of the Hugging Face directory `dir`: `chat_template.jinja`, else
    /// `tokenizer_config.json`'s `chat_template` (a string, or a list of `{name, template}`
    /// of which `default` or the first is taken); `None` when it has neither.
    ///
    /// # Errors
    /// [`Error::Io`], or [`Error::Tokenizer`] for a `tokenizer_config.json` that is not JSON
    /// or whose keys have the wrong type.
    pub fn from_hf_dir(dir: &Path) -> Result<Option<ChatTemplate>> {
        let config_path = dir.join(TOKENIZER_CONFIG_FILE);
        let bad = |reason: String| Error::Tokenizer { path: config_path.clone(), reason };
        let config: serde_json::Map<String, serde_json::Value> = if config_path.is_file() {
            let bytes = std::fs::read(&config_path).reading(&config_path)?;
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a JSON object: {e}")))?
        } else {
            serde_json::Map::new()
        };
        let jinja = dir.join(CHAT_TEMPLATE_FILE);
        let (source, origin) = if jinja.is_file() {
            let bytes = std::fs::read(&jinja).reading(&jinja)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| Error::Tokenizer { path: jinja.clone(), reason: "not UTF-8 text".into() })?;
            (text, jinja)
        } else {
            match config.get("chat_template") {
                None | Some(serde_json::Value::Null) => return Ok(None),
                Some(value) => (template_of(value).map_err(bad)?, config_path.clone()),
            }
        };
        let token = |key: &str| token_text(config.get(key)).map_err(|e| bad(format!("`{key}` {e}")));
        Ok(Some(ChatTemplate {
            source,
            bos_token: token("bos_token")?,
            eos_token: token("eos_token")?,
            origin,
        }))
    }

    /// The text of `messages` as the template writes it, ending with the assistant's turn
    /// opened when `add_generation_prompt`.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] naming the template's file, with minijinja's reason (a syntax error,
    /// an unknown function, or the template's own `raise_exception`).
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let bad = |e: minijinja::Error| Error::Tokenizer {
            path: self.origin.clone(),
            reason: format!("chat template: {}", one_line_error(&e)),
        };
        let mut env = minijinja::Environment::new();
        let mut syntax = minijinja::syntax::SyntaxConfig::builder();
        syntax.trim_blocks(true).lstrip_blocks(true);
        env.set_syntax(syntax.build().map_err(bad)?);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, message))
            },
        );
        let template = env.template_from_str(&self.source).map_err(bad)?;
        template
            .render(minijinja::context! {
                messages => minijinja::Value::from(minijinja::value::Serde(messages)),
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(bad)
    }
}

/// The template in `tokenizer_config.json`'s `chat_template`.
fn template_of(value: &serde_json::Value) -> std::result::Result<String, String> {
    use serde_json::Value;
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Array(named) => {
            let template = |entry: &Value| entry.get("template").and_then(Value::as_str).map(str::to_string);
            let default = named.iter().find(|e| e.get("name").and_then(Value::as_str) == Some("default"));
            default.or(named.first()).and_then(template).ok_or_else(|| {
                "`chat_template` is a list without a `{\"name\", \"template\"}` entry".to_string()
            })
        }
        _ => Err("`chat_template` is neither a string nor a list of named templates".into()),
    }
}

/// The text of a special token in `tokenizer_config.json`: a string, or an `AddedToken`
/// object's `content`; empty when absent or null.
fn token_text(value: Option<&serde_json::Value>) -> std::result::Result<String, String> {
    use serde_json::Value;
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Object(o)) => match o.get("content") {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err("is an object without a string `content`".into()),
        },
        Some(_) => Err("is neither a string nor an object with `content`".into()),
    }
}

/// minijinja's error and its causes on one line (its `Display` is one line; the causes hold
/// the template's own message).
fn one_line_error(e: &minijinja::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.split(['\n', '\r']).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-Instruct's template (its `tokenizer_config.json`): ChatML with a default system turn.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn template(source: &str) -> ChatTemplate {
        ChatTemplate {
            source: source.into(),
            bos_token: "<s>".into(),
            eos_token: "</s>".into(),
            origin: "t".into(),
        }
    }

    #[test]
    fn chatml_renders_as_transformers_does() {
        let t = template(SMOLLM2);
        let text = t.render(&[Message::new("user", "Hi!")], true).unwrap();
        assert_eq!(
            text,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
             <|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
        );
        let text =
            t.render(&[Message::new("system", "Be brief."), Message::new("user", "Hi!")], false).unwrap();
        assert_eq!(text, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n");
    }

    /// Python string methods, `bos_token`, trim_blocks/lstrip_blocks and `raise_exception`, as
    /// Llama-2-chat's and Zephyr's templates use them.
    #[test]
    fn python_methods_whitespace_control_and_raise_exception() {
        let t = template(
            "{{ bos_token }}{% for m in messages %}\n    {% if m['role'] == 'user' %}\n[INST] {{ m['content'].strip() }} [/INST]\n    {% else %}\n{{ raise_exception('Only user turns: ' + m['role']) }}\n    {% endif %}\n{% endfor %}",
        );
        assert_eq!(t.render(&[Message::new("user", "  hello ")], true).unwrap(), "<s>[INST] hello [/INST]\n");
        let err = t.render(&[Message::new("system", "x")], true).unwrap_err().to_string();
        assert!(err.contains("Only user turns: system") && !err.contains('\n'), "{err}");
        let err = template("{% for %}").render(&[], true).unwrap_err().to_string();
        assert!(err.contains("chat template") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn hf_directories_keep_the_template_in_two_places() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ChatTemplate::from_hf_dir(dir.path()).unwrap(), None);
        let config = serde_json::json!({
            "bos_token": {"content": "<s>", "special": true}, "eos_token": "</s>",
            "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}],
        });
        std::fs::write(dir.path().join(TOKENIZER_CONFIG_FILE), config.to_string()).unwrap();
        let t = ChatTemplate::from_hf_dir(dir.path()).unwrap().unwrap();
        assert_eq!((t.source.as_str(), t.bos_token.as_str(), t.eos_token.as_str()), ("D", "<s>", "</s>"));
        std::fs::write(dir.path().join(CHAT_TEMPLATE_FILE), "J").unwrap();
        assert_eq!(ChatTemplate::from_hf_dir(dir.path()).unwrap().unwrap().source, "J");
        std::fs::write(dir.path().join(TOKENIZER_CONFIG_FILE), r#"{"eos_token": 3}"#).unwrap();
        let err = ChatTemplate::from_hf_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("`eos_token` is neither"), "{err}");
    }
}
