//! The brain: turns a tenant's documents into retrievable passages and answers questions from
//! them (retrieval-augmented generation), with llama.cpp in-process or an Ollama server.
//! It never knows about channels; every call takes a tenant scope.
//!
//! Status: an empty crate in the workspace; it is built out by the brain issue.
