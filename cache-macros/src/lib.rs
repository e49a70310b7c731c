//! `#[cached(...)]`: the Rust face of the Python library's `@cache.cached(...)`.
//!
//! Use it through `cache_core::cached` or `cache::cached`; the documentation lives there.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Error, Expr, ExprLit, FnArg, GenericArgument, ItemFn, Lit, MetaNameValue, Pat, PathArguments,
    ReturnType, Token, Type,
};

/// Wraps a function returning `Result<T, E>` in get-or-compute; see `cache_core::cached`.
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

#[derive(Default)]
struct Options {
    cache: Option<Expr>,
    key: Option<Expr>,
    key_prefix: Option<Expr>,
    namespace: Option<Expr>,
    exclude: Vec<syn::Ident>,
    /// Arguments used as bare flags (`skip = no_cache`): never part of the key.
    flags: Vec<syn::Ident>,
    calls: Vec<TokenStream2>,
}

/// The path of the library in the calling crate: `cache-core` if it is a direct
/// dependency, else the `cache` umbrella.
fn krate() -> TokenStream2 {
    use proc_macro_crate::{crate_name, FoundCrate};
    for name in ["cache-core", "cache"] {
        match crate_name(name) {
            Ok(FoundCrate::Name(n)) => {
                let id = format_ident!("{}", n);
                return quote!(::#id);
            }
            Ok(FoundCrate::Itself) => {
                let id = format_ident!("{}", name.replace('-', "_"));
                return quote!(::#id);
            }
            Err(_) => continue,
        }
    }
    quote!(::cache)
}

fn as_ident(e: &Expr) -> Option<syn::Ident> {
    match e {
        Expr::Path(p) => p.path.get_ident().cloned(),
        _ => None,
    }
}

/// The variable an expression starts from: `state` in `state.cache` or `&*state.cache`.
fn root_ident(e: &Expr) -> Option<syn::Ident> {
    match e {
        Expr::Field(f) => root_ident(&f.base),
        Expr::Reference(r) => root_ident(&r.expr),
        Expr::Unary(u) => root_ident(&u.expr),
        Expr::Paren(p) => root_ident(&p.expr),
        other => as_ident(other),
    }
}

fn int_literal(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Lit(ExprLit {
            lit: Lit::Int(_),
            ..
        })
    )
}

fn parse_options(args: TokenStream2, krate: &TokenStream2) -> syn::Result<Options> {
    let list = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(args)?;
    let mut o = Options::default();
    for nv in list {
        let name = nv
            .path
            .get_ident()
            .ok_or_else(|| Error::new(nv.path.span(), "expected an option name"))?
            .to_string();
        let v = nv.value;
        let duration = |v: &Expr| {
            if int_literal(v) {
                quote!(::core::time::Duration::from_secs(#v))
            } else {
                quote!(#v)
            }
        };
        match name.as_str() {
            "cache" => o.cache = Some(v),
            "key" => o.key = Some(v),
            "key_prefix" => o.key_prefix = Some(v),
            "exclude" => match v {
                Expr::Array(arr) => {
                    for e in arr.elems {
                        match e {
                            Expr::Path(p) if p.path.get_ident().is_some() => o
                                .exclude
                                .push(p.path.get_ident().cloned().expect("checked")),
                            other => {
                                return Err(Error::new(
                                    other.span(),
                                    "exclude takes argument names: exclude = [db, client]",
                                ))
                            }
                        }
                    }
                }
                other => {
                    return Err(Error::new(
                        other.span(),
                        "exclude takes a list: exclude = [db, client]",
                    ))
                }
            },
            "expiry" => {
                let e = if int_literal(&v) {
                    quote!(#krate::Expiry::seconds(#v))
                } else {
                    quote!(#v)
                };
                o.calls.push(quote!(.expiry(#e)));
            }
            "namespace" => o.namespace = Some(v),
            "stampede_protection" => o.calls.push(quote!(.stampede_protection(#v))),
            "skip" | "refresh" => {
                if let Some(id) = as_ident(&v) {
                    o.flags.push(id);
                }
                let method = format_ident!("{}", name);
                o.calls.push(quote!(.#method(#v)));
            }
            "lock_ttl" => {
                let d = duration(&v);
                o.calls.push(quote!(.lock_ttl(#d)));
            }
            "lock_wait" => {
                let d = duration(&v);
                o.calls.push(quote!(.lock_wait(#d)));
            }
            "store_timeout" => {
                let d = duration(&v);
                o.calls.push(quote!(.store_timeout(#d)));
            }
            other => {
                return Err(Error::new(
                    nv.path.span(),
                    format!(
                    "unknown option `{other}`; expected cache, key, key_prefix, exclude, expiry, namespace, \
                         stampede_protection, lock_ttl, lock_wait, store_timeout, skip or refresh"
                ),
                ))
            }
        }
    }
    Ok(o)
}

/// `Result<T, E>` → (T, E).
fn result_parts(ty: &Type) -> Option<(&Type, &Type)> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    Some((types.next()?, types.next()?))
}

fn expand(args: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let krate = krate();
    let options = parse_options(args, &krate)?;
    let func: ItemFn = syn::parse2(item)?;
    if options.key.is_some() && options.key_prefix.is_some() {
        return Err(Error::new(
            Span::call_site(),
            "#[cached] takes `key` (the whole key) or `key_prefix` (the default key's start), not both",
        ));
    }
    let cache = options.cache.clone().ok_or_else(|| {
        Error::new(
            Span::call_site(),
            "#[cached] needs `cache = <expression>`: a Cache (async fn) or blocking::Cache (fn), \
             e.g. a static LazyLock or an argument of the function",
        )
    })?;
    let sig = &func.sig;
    let (ok_ty, err_ty) = match &sig.output {
        ReturnType::Type(_, ty) => result_parts(ty),
        ReturnType::Default => None,
    }
    .ok_or_else(|| {
        Error::new(
            sig.output.span(),
            "#[cached] functions return Result<T, E> (use std::convert::Infallible for E when \
             nothing can fail); the cached function returns Result<T, ComputeError<E>>",
        )
    })?;

    // Argument names, for the key and the call to the original body.
    let mut names = Vec::new();
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(r) => {
                return Err(Error::new(
                    r.span(),
                    "#[cached] works on free functions; in a method call `cache.cached(key).get_or_compute(...)` directly",
                ))
            }
            FnArg::Typed(t) => match &*t.pat {
                Pat::Ident(id) => names.push(id.ident.clone()),
                other => {
                    return Err(Error::new(other.span(), "#[cached] needs plain argument names (no patterns)"))
                }
            },
        }
    }
    for ex in &options.exclude {
        if !names.contains(ex) {
            return Err(Error::new(
                ex.span(),
                format!("`{ex}` is not an argument of this function"),
            ));
        }
    }
    // The argument the cache comes from (`cache`, `state.cache`) is never part of the key.
    let cache_arg = root_ident(&cache);
    let fn_name = &sig.ident;
    // The default key starts with the crate's and the function's names: moving the
    // function in its crate keeps its keys; another crate's function of that name
    // (another service on the same store) has its own.
    let default_prefix = quote!(::core::concat!(
        ::core::env!("CARGO_PKG_NAME"),
        "::",
        ::core::stringify!(#fn_name)
    ));
    // Registered at the first call, so that two functions of one crate building keys
    // from one prefix in one namespace fail instead of reading each other's values
    // (a prefix computed at run time, or a whole `key`, is the caller's to keep apart).
    let registered = match (&options.key, &options.key_prefix) {
        (None, None) => Some(default_prefix.clone()),
        (
            None,
            Some(Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            })),
        ) => Some(quote!(#s)),
        _ => None,
    };
    let namespace_text = options
        .namespace
        .as_ref()
        .map(|n| quote!(#n).to_string())
        .unwrap_or_default();
    let check = registered.map(|prefix| {
        quote! {
            static __CACHED_SITE: ::std::sync::OnceLock<#krate::KeySite> = ::std::sync::OnceLock::new();
            if let ::core::result::Result::Err(e) = __CACHED_SITE
                .get_or_init(|| #krate::KeySite::register(
                    #prefix,
                    #namespace_text,
                    ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#fn_name)),
                ))
                .check()
            {
                return ::core::result::Result::Err(::core::convert::From::from(e));
            }
        }
    });
    // The arguments of the default key.
    let key_args: Vec<&syn::Ident> = names
        .iter()
        .filter(|n| {
            !options.exclude.contains(n)
                && !options.flags.contains(n)
                && Some(*n) != cache_arg.as_ref()
        })
        .collect();
    let key = match &options.key {
        Some(k) => quote!(#k),
        None => {
            let parts = names
                .iter()
                .filter(|n| key_args.contains(n))
                .map(|n| quote!(.arg(&#n)));
            let prefix = match &options.key_prefix {
                Some(p) => quote!(#p),
                None => default_prefix.clone(),
            };
            quote!(#krate::KeyBuilder::new(#prefix) #(#parts)*)
        }
    };

    let mut inner_sig = sig.clone();
    inner_sig.ident = format_ident!("__cached_uncached_{}", fn_name);
    let inner_name = &inner_sig.ident;
    let body = &func.block;
    let mut outer_sig = sig.clone();
    let out_span = sig.output.span();
    outer_sig.output = syn::parse2(quote_spanned! {out_span=>
        -> ::core::result::Result<#ok_ty, #krate::ComputeError<#err_ty>>
    })?;
    let attrs = &func.attrs;
    let vis = &func.vis;
    let calls = &options.calls;
    let namespace = options.namespace.as_ref().map(|ns| quote!(.namespace(#ns)));
    let (run, invalidate) = if sig.asyncness.is_some() {
        (
            quote!(.get_or_compute(move || #inner_name(#(#names),*)).await),
            quote!(.invalidate().await),
        )
    } else {
        (
            quote!(.get_or_compute(move || #inner_name(#(#names),*))),
            quote!(.invalidate()),
        )
    };
    let inv_sig = invalidator(&func.sig, &options, &key_args, &krate)?;
    let inv_doc = format!(
        "Removes the value [`{fn_name}`] cached for these arguments (the same key and \
         namespace): call it after a write to what the value was computed from. True if \
         a value was stored; see `ComputeCall::invalidate`."
    );
    Ok(quote! {
        #(#attrs)*
        #vis #outer_sig {
            #[allow(clippy::too_many_arguments, unused_variables)]
            #inner_sig #body
            #check
            let __cached_key = #key;
            (#cache).cached(__cached_key) #namespace #(#calls)* #run
        }

        #[doc = #inv_doc]
        #[allow(clippy::too_many_arguments, unused_variables, unused_mut)]
        #vis #inv_sig {
            #check
            let __cached_key = #key;
            (#cache).cached(__cached_key) #namespace #invalidate
        }
    })
}

/// The generated `<fn>_invalidate`: the arguments the key, the cache and the namespace
/// are built from (all of them when the function is generic or the key is given, so
/// that nothing is left to infer), returning `Result<bool, Error>`.
fn invalidator(
    fn_sig: &syn::Signature,
    options: &Options,
    key_args: &[&syn::Ident],
    krate: &TokenStream2,
) -> syn::Result<syn::Signature> {
    let mut used = Vec::new();
    for e in [
        &options.cache,
        &options.namespace,
        &options.key_prefix,
        &options.key,
    ]
    .into_iter()
    .flatten()
    {
        idents_in(quote!(#e), &mut used);
    }
    // A format string may name arguments no token shows (`format!("t-{tenant}")`).
    let formats = [&options.cache, &options.namespace, &options.key_prefix]
        .into_iter()
        .flatten()
        .any(|e| has_format_literal(quote!(#e)));
    let keep_all = options.key.is_some() || formats;
    let mut sig = fn_sig.clone();
    sig.ident = format_ident!("{}_invalidate", fn_sig.ident);
    sig.inputs = fn_sig
        .inputs
        .iter()
        .filter(|arg| match arg {
            FnArg::Typed(t) => match &*t.pat {
                Pat::Ident(id) => {
                    keep_all || key_args.contains(&&id.ident) || used.contains(&id.ident)
                }
                _ => true,
            },
            FnArg::Receiver(_) => true,
        })
        .cloned()
        .collect();
    sig.output = syn::parse2(quote!(-> ::core::result::Result<bool, #krate::Error>))?;
    // Type parameters no kept argument mentions (say, only the value's type) could
    // not be inferred at the call: they go, with the bounds that name them.
    let mut in_args = Vec::new();
    for arg in &sig.inputs {
        idents_in(quote!(#arg), &mut in_args);
    }
    let dropped: Vec<syn::Ident> = sig
        .generics
        .type_params()
        .map(|t| t.ident.clone())
        .filter(|t| !in_args.contains(t))
        .collect();
    let mentions_dropped = |tokens: TokenStream2| {
        let mut ids = Vec::new();
        idents_in(tokens, &mut ids);
        ids.iter().any(|i| dropped.contains(i))
    };
    sig.generics.params = sig
        .generics
        .params
        .iter()
        .filter(|p| !matches!(p, syn::GenericParam::Type(t) if dropped.contains(&t.ident)))
        .cloned()
        .collect();
    if let Some(w) = sig.generics.where_clause.as_mut() {
        w.predicates = w
            .predicates
            .iter()
            .filter(|p| !mentions_dropped(quote!(#p)))
            .cloned()
            .collect();
    }
    Ok(sig)
}

/// Whether `tokens` hold a string literal with a `{`: a format string.
fn has_format_literal(tokens: TokenStream2) -> bool {
    tokens.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Literal(l) => l.to_string().contains('{'),
        proc_macro2::TokenTree::Group(g) => has_format_literal(g.stream()),
        _ => false,
    })
}

/// Every identifier in `tokens`, nested groups included.
fn idents_in(tokens: TokenStream2, out: &mut Vec<proc_macro2::Ident>) {
    for t in tokens {
        match t {
            proc_macro2::TokenTree::Ident(id) => out.push(id),
            proc_macro2::TokenTree::Group(g) => idents_in(g.stream(), out),
            _ => {}
        }
    }
}

/// This crate's README, compiled and run as doc tests (private: a proc-macro crate
/// exports nothing but macros).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
#[allow(dead_code)]
struct ReadmeDoctests;
