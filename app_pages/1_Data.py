"""Data: pick a built-in data set or upload your own file; statistics of the active data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

from recsys_core.datasets.source import DataSource
from recsys_core.datasets.user_files import DUPLICATE_RULE_TEXT, DUPLICATE_RULES
from recsys_core.drugs import MEDICAL_NOTE, condition_names
from recsys_core.errors import RecsysError
from webapp import data_ui, errors, frame, loading
from webapp.active import set_active_source, sidebar_status
from webapp.errors import friendly_errors
from webapp.loading import is_drug_data, load_data
from webapp.safe_output import plain

page = frame.open_page("Data", needs_data=False)  # this page is where data is chosen: it works without any

NONE = "—"
MAX_MB = float(st.get_option("server.maxUploadSize"))
source = page.source
# "Use this data" reruns the page so that everything, this caption first, names the new data at once.
if flash := st.session_state.pop("data_flash", None):
    st.success(flash)
st.caption(f"Active data: **{plain(source.name)}** ({'built-in' if source.kind == 'builtin' else 'your file'})")

tab_builtin, tab_upload = st.tabs(["Built-in data sets", "Upload your own file"])

# -- built-in data sets ---------------------------------------------------------------------------------------
with tab_builtin:
    rows = {row["name"]: row for row in data_ui.dataset_rows()}
    names = list(rows)

    def _label(name: str) -> str:
        # The browser sends back the label it showed, and Streamlit maps it to a name through the labels of the
        # rerun: a label that changes when a fetch finishes (a " · fetched" mark) came back as the raw label.
        # So the label never changes; whether a data set is fetched is said below the picker.
        return f"{rows[name]['title']} ({name})"

    def _on_pick() -> None:
        name = st.session_state["data_builtin"]
        if name in rows and loading.is_available(name):
            set_active_source(DataSource.builtin(name))

    default = source.name if source.kind == "builtin" and source.name in rows else "ml-100k"
    chosen = st.selectbox(
        "Data set",
        names,
        index=names.index(default),
        format_func=_label,
        key="data_builtin",
        on_change=_on_pick,
        help="Choosing a data set that is already fetched makes it the active data for every page.",
    )
    row = rows[chosen]
    st.markdown(f"**{row['title']}** — {row['description']}" + ("" if row["available"] else " *(not fetched yet)*"))
    st.markdown(f"**Licence:** {row['licence']}  \n**Size:** {data_ui.size_text(row['size_mb'])}  \n**Source:** {row['url'] or '—'}")
    with st.expander("Citation and where it lives"):
        st.markdown(row["citation"])
        if row["homepage"]:
            st.markdown(f"Homepage: {row['homepage']}")
        st.caption(f"Stored in {plain(row['path'])}")
    if row["available"]:
        if source.kind == "builtin" and source.name == chosen:
            st.success(f"{chosen} is fetched and is the active data.")
        elif st.button(f"Use {chosen}", key="data_use_builtin", type="primary"):
            set_active_source(DataSource.builtin(chosen))
            st.rerun()
    else:
        if row["size_mb"] and row["size_mb"] > 100:
            st.info(f"{row['title']} is a large download ({data_ui.size_text(row['size_mb'])}); reading it needs several GB of memory.")
        if st.button(f"Fetch {chosen}", key="data_fetch", type="primary"):
            error = data_ui.fetch_with_progress(chosen, row["title"])
            if error is not None:
                errors.show_error(error, f"{chosen} could not be fetched")
                st.info("You can also upload the files in the next tab (for example drugsComTrain_raw.tsv).")
            else:
                set_active_source(DataSource.builtin(chosen))
                st.rerun()

# -- upload ------------------------------------------------------------------------------------------------------
with tab_upload:
    st.markdown(
        f"A CSV, TSV or parquet file with one interaction per row: a user column, an item column and, if you have them, "
        f"a rating, a time, a weight (counts, plays) and a title. Files up to **{MAX_MB:g} MB** (a `.csv.gz` counts "
        "compressed). The file is kept only in this app's data home."
    )
    uploaded = st.file_uploader("Your interaction file", type=list(data_ui.UPLOAD_WIDGET_TYPES), key="data_upload")
    if uploaded is not None and st.session_state.get("upload_file_id") != uploaded.file_id:
        st.session_state["upload_file_id"] = uploaded.file_id
        try:
            stored, _ = data_ui.accept_upload(uploaded.getvalue(), uploaded.name, max_mb=MAX_MB)
        except RecsysError as error:
            st.session_state.pop("upload", None)
            st.session_state["upload_error"] = (uploaded.name, error)
        else:
            st.session_state["upload"] = stored.to_json()
            st.session_state.pop("upload_error", None)
    if st.session_state.get("upload_error"):
        errors.show_error(st.session_state["upload_error"][1], st.session_state["upload_error"][0])

    upload = st.session_state.get("upload")
    if upload and not Path(upload["path"]).exists():
        st.warning(f"The stored copy of {plain(upload['name'])} is gone; upload it again.")
        upload = None
    if upload and st.session_state.get("upload_form_for") != upload["path"]:
        # A new file: forget the choices made for the previous one (the settings below set them again).
        for key in data_ui.FORM_KEYS:
            st.session_state.pop(key, None)
        st.session_state["upload_form_for"] = upload["path"]
    if upload:
        stored = data_ui.Upload(**upload)
        # The file of the active data shows the options it was read with; any other file the defaults. Set through
        # session state, so that the browser never shows a box ticked that the reading does not apply.
        applied = source.options if source.kind == "file" and Path(source.path or "") == Path(stored.path) else None
        for key, value in data_ui.form_state(applied, source.name if applied else stored.stem).items():
            st.session_state.setdefault(key, value)
        st.markdown(f"**{plain(stored.name)}** — {stored.size / 1e6:,.2f} MB")
        delimiters = {"auto": None, "comma ,": ",", "tab": "\t", "semicolon ;": ";", "pipe |": "|", "colon :": ":", "space": " "}
        delimiter_label = st.selectbox(
            "Delimiter",
            list(delimiters),
            key="map_delimiter",
            help="Detected automatically; choose it by hand if the preview has one column.",
        )
        with errors.friendly_errors(f"{stored.name} cannot be read"):
            sniff = data_ui.sniff_path(stored.path, delimiters[delimiter_label], display_name=stored.name)
        for warning in sniff["warnings"]:
            st.warning(plain(warning))
        st.caption(
            f"Format: {sniff['format']}"
            + (f" · delimiter {sniff['delimiter']!r} · encoding {sniff['encoding']}" if sniff["format"] == "csv" else "")
            + ("" if sniff["header"] else " · no header row: columns are numbered")
        )
        st.dataframe(sniff["preview"], hide_index=True, width="stretch")

        columns = list(sniff["columns"])
        if data_ui.looks_like_drugscom(columns):
            st.info(
                "This looks like a Drugs.com review file (UCI, Kaggle or the sample). Read it as drug reviews: the condition acts "
                "as the user and the drug as the item, rows without a condition and scraping artefacts are dropped, HTML "
                "entities in reviews are unescaped, and each review is kept as evidence. Or map the columns yourself below."
            )
            if st.button("Use as Drugs.com reviews", key="data_use_drugscom", type="primary"):
                with friendly_errors():
                    source = DataSource.drugscom_file(stored.path, name=Path(stored.name).stem, display_name=stored.name)
                    data = load_data(source)
                set_active_source(source)
                st.success(f"Active data: {plain(data.name)} — {data.n_users:,} conditions, {data.n_items:,} drugs, {len(data):,} reviews.")
        guesses = sniff["guesses"]
        st.subheader("Which column is what?")
        chosen_cols: dict[str, str | None] = {}
        cells = st.columns(3)
        for i, role in enumerate(data_ui.ROLES):
            required = role in ("user", "item")
            options = columns if required else [NONE] + columns
            key = f"map_{role}"
            if st.session_state.get(key) not in options:
                guess = (applied or {}).get(f"{role}_col") or guesses.get(role)
                st.session_state[key] = guess if guess in options else (options[0] if not required else options[min(i, len(options) - 1)])
            value = cells[i % 3].selectbox(
                f"{role}" + (" (required)" if required else ""),
                options,
                key=key,
                help={
                    "user": "Who interacted (a user id; for drug reviews the condition).",
                    "item": "With what (an item id; for drug reviews the drug name).",
                    "rating": "An explicit rating; leave empty for implicit feedback (clicks, purchases).",
                    "timestamp": "Unix seconds or milliseconds, or dates such as 2024-03-01. Used by leave-one-out to hold out each user's latest item.",
                    "weight": "How strongly (play counts, quantities, useful votes).",
                    "title": "A readable item name shown beside recommendations.",
                }[role],
            )
            chosen_cols[role] = None if value == NONE else value

        cells = st.columns(3)
        if chosen_cols["rating"] is None:  # without a rating column neither rule applies: never show one ticked
            st.session_state["map_implicit"] = st.session_state["map_drop_blank"] = False
        implicit = cells[0].checkbox(
            "Implicit feedback: keep only ratings ≥ threshold",
            key="map_implicit",
            disabled=chosen_cols["rating"] is None,
            help="Turns ratings into 'liked' interactions; rows below the threshold are dropped.",
        )
        threshold = cells[0].number_input("Rating threshold", step=0.5, key="map_threshold", disabled=not implicit)
        drop_blank = cells[0].checkbox(
            "Drop rows with a blank rating",
            key="map_drop_blank",
            disabled=chosen_cols["rating"] is None,
            help="Otherwise a blank rating refuses the file. How many rows were dropped is in the row accounting below.",
        )
        min_user = cells[1].number_input(
            "k-core: minimum interactions per user",
            min_value=0,
            step=1,
            key="map_min_user",
            help="Applied repeatedly with the item minimum until both hold; 0 or 1: no filter.",
        )
        min_item = cells[1].number_input("k-core: minimum interactions per item", min_value=0, step=1, key="map_min_item")
        duplicates = cells[2].radio(
            "Repeated (user, item) rows",
            list(DUPLICATE_RULES),
            format_func=DUPLICATE_RULE_TEXT.get,
            key="map_duplicates",
            help="Each rule keeps the pair's latest row (by time; without times the last in the file) with its rating. "
            "Sum: its weight is the weight column summed over the rows (a quantity, plays); count: the number of rows.",
        )
        name = cells[2].text_input("Name of this data", key="map_name")

        if st.button("Use this data", key="data_use_upload", type="primary"):
            try:
                options = data_ui.options_from_form(
                    chosen_cols,
                    threshold=float(threshold) if implicit and chosen_cols["rating"] else None,
                    min_user=int(min_user),
                    min_item=int(min_item),
                    duplicates=duplicates,
                    delimiter=delimiters[delimiter_label],
                    drop_blank_ratings=drop_blank,
                )
                new_source, new_data = data_ui.use_upload(stored.path, options, name, label=stored.name)
            except RecsysError as error:
                errors.show_error(error, "This data cannot be used")
            else:
                set_active_source(new_source)
                st.session_state["data_flash"] = (
                    f"{plain(new_source.name)} is now the active data: {new_data.n_users:,} {new_data.users.kind}s, "
                    f"{new_data.n_items:,} {new_data.items.kind}s, {len(new_data):,} interactions."
                )
                st.rerun()

# -- statistics of the active data -----------------------------------------------------------------------------------
st.divider()
st.header(f"Active data: {plain(source.name)}")
if source.kind == "builtin" and not loading.is_available(source.name):
    st.info(f"{plain(source.name)} is not fetched yet: fetch it above, or upload your own file.")
    sidebar_status(slot=page.sidebar)
    st.stop()
if source.kind in ("builtin", "drugscom-file"):
    # The positive rule: which interactions models learn from and are tested on (a user file sets it in its mapping above).
    drug_source = source.kind == "drugscom-file" or source.name.startswith("drugscom")
    rule_cells = st.columns([2, 1, 3], vertical_alignment="bottom")
    rule_on = rule_cells[0].checkbox(
        "Positive rule: only ratings at or above a threshold are positives",
        value=source.threshold is not None,
        key=f"data_rule_on_{source.name}",
        help="Models learn from and are tested on positives only; lower ratings stay as evidence (review counts, mean ratings).",
    )
    rule_value = rule_cells[1].number_input(
        "Threshold",
        value=float(source.threshold if source.threshold is not None else (7.0 if drug_source else 4.0)),
        step=0.5,
        key=f"data_rule_threshold_{source.name}",
        disabled=not rule_on,
    )
    wanted = float(rule_value) if rule_on else None
    if wanted != source.threshold:
        source = dataclasses.replace(source, threshold=wanted)
        set_active_source(source)
    rule_cells[2].caption(
        f"Now: {source.positive_rule()}. "
        + ("Drug data defaults to 7 of 10 (Gräßer et al. 2018); on the sample that is the label 'positive'. " if drug_source else "")
        + "Every run records the rule it was trained with."
    )
try:
    data = load_data(source)
    summary = data_ui.data_summary(data_ui.summary_key(source))
except RecsysError as error:
    errors.show_error(error, f"{source.name} cannot be loaded")
    sidebar_status(slot=page.sidebar)
    st.stop()

sidebar_status(data, page.sidebar)
if is_drug_data(data):
    st.info(MEDICAL_NOTE)
    st.markdown(
        "**Which review is a condition's latest?** Leave-one-out holds out each condition's latest drug: the drug of its "
        "latest review date (the date of the latest positive review of that pair). Review dates are when a patient wrote, not when "
        "the drug was started, so this order is weaker than MovieLens' rating times; ties in date are broken by a seeded "
        'random order. To hold out seeded random items instead, choose "seeded random items" on the **Train** page '
        "(`--loo-order random` on the command line)."
    )
    if source.kind != "file":
        with friendly_errors():
            names = condition_names(source.all_reviews())
        with st.expander(f"Condition names: {len(names.restored)} restored, {len(names.suspect)} still look cut"):
            st.markdown(
                "The Drugs.com scrape cut some condition names short. A name that is a proper prefix of exactly one other "
                "condition, cut inside a word, is that condition; a name whose last word is a known cut word "
                '("Disorde", "Cance", "Lab", …) gets it completed. Restored here:'
            )
            st.dataframe(names.restored, hide_index=True, width="stretch")
            if names.suspect:
                suspect = ", ".join("`" + n.replace("`", "'") + "`" for n in names.suspect)  # code spans: shown as typed
                st.markdown("Still look cut at the start, kept as they are: " + suspect)
stats = summary["stats"]
users_kind, items_kind = summary["users_kind"], summary["items_kind"]
cells = st.columns(4)
cells[0].metric(f"{users_kind}s", f"{stats['users']:,}")
cells[1].metric(f"{items_kind}s", f"{stats['items']:,}")
cells[2].metric("interactions", f"{stats['interactions']:,}")
cells[3].metric("density", f"{stats['density']:.3%}", help="interactions / (users × items)")
facts = [f"ratings: {'yes' if stats['has_rating'] else 'no (implicit feedback)'}"]
if summary["time_range"]:
    facts.append(f"time span: {summary['time_range'][0]} to {summary['time_range'][1]}")
else:
    facts.append("no timestamps (leave-one-out holds out a random item per user)")
st.caption(" · ".join(facts))
st.dataframe(data_ui.quantile_table(stats, users_kind, items_kind), width="stretch")
if source.kind == "file":
    with friendly_errors():
        account = data_ui.file_account(data_ui.summary_key(source))
    if account is not None:
        st.markdown("**Where every row of the file went**")
        st.dataframe(account, hide_index=True, width="stretch")

log_y = st.checkbox("Logarithmic count axis", value=True, key="data_log_y")
left, right = st.columns(2)
with left:
    st.subheader(f"Interactions per {users_kind}")
    st.plotly_chart(data_ui.count_figure(summary["per_user"], "interactions", f"{users_kind}s", log_y), key="data_hist_users")
with right:
    st.subheader(f"Interactions per {items_kind}")
    st.plotly_chart(data_ui.count_figure(summary["per_item"], "interactions", f"{items_kind}s", log_y), key="data_hist_items")
everything = data_ui.all_ratings(data_ui.summary_key(source)) if source.threshold is not None else None
if everything is not None:
    # After the positive rule the ratings left are those at or above it (on the binned drug sample: one bar): show
    # every review or rating, the rule marked.
    what = "reviews" if "class" in everything else "interactions"
    st.subheader(f"Ratings of all {what}, and the positive rule")
    st.plotly_chart(data_ui.ratings_figure(everything, source.threshold, what), key="data_hist_ratings")
    if "class" in everything:
        counts = everything.groupby("class")["count"].sum()
        st.caption(
            " · ".join(f"{kind}: {int(counts.get(kind, 0)):,}" for kind in ("positive", "neutral", "negative"))
            + f". Positive reviews (rating ≥ {source.threshold:g}) are what models learn from and are tested on; "
            "neutral and negative ones stay as evidence on the Recommend page."
        )
elif summary["ratings"] is not None:
    st.subheader("Rating distribution")
    ratings = summary["ratings"].rename(columns={"rating": "bin"})
    st.plotly_chart(data_ui.count_figure(ratings, "rating", "interactions", False), key="data_hist_ratings")
