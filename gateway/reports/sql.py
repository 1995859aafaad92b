"""The report queries. Every figure is computed by PostgreSQL from the recorded lifecycle
(``alarm_events``), never by a Python loop over alarms; docs/reports.md defines each column.

``ALARMS`` turns each alarm's steps into one row (when it was raised, deployed, accepted,
arrived, resolved or cancelled; its kind, most urgent priority and outcome) and keeps the
alarms raised in the period. The queries below select from it.
"""

from __future__ import annotations

# Steps are read from two days before the period: an alarm raised in the period has all its
# steps after that (a deferred bed exit waits minutes, not days). Nothing after the period is
# cut off: an alarm raised at 23:59 on the last day keeps its arrival at 00:20 the next month.
# For speed the steps are read in two parts: everything of the scheme's up to a week after the
# period (one range scan of the period's chunks), then, only for the alarms still open by
# then, their later steps by alarm id, so a quarter in a year of records reads one quarter.
ALARMS = """
WITH starts AS (
    SELECT DISTINCT alarm_id FROM alarm_events
     WHERE scheme = %(scheme)s AND step IN ('raised', 'test_call')
       AND at >= %(lo)s - interval '2 days' AND at < %(hi)s + interval '2 days'
),
near AS (
    SELECT e.alarm_id, e.at, e.step, e.priority, e.received_at, e.detail, e.journal_seq
      FROM alarm_events e JOIN starts USING (alarm_id)
     WHERE e.scheme = %(scheme)s
       AND e.at >= %(lo)s - interval '2 days' AND e.at < %(hi)s + interval '7 days'
),
still_open AS (
    SELECT alarm_id FROM near GROUP BY alarm_id
    HAVING NOT bool_or(step IN ('resolved', 'cancelled'))
),
steps AS (
    SELECT * FROM near
    UNION ALL
    SELECT e.alarm_id, e.at, e.step, e.priority, e.received_at, e.detail, e.journal_seq
      FROM alarm_events e
     WHERE e.alarm_id = ANY (ARRAY(SELECT alarm_id FROM still_open))
       AND e.scheme = %(scheme)s AND e.at >= %(hi)s + interval '7 days'
),
lifecycle AS (
    SELECT alarm_id,
           COALESCE(min(at) FILTER (WHERE step = 'defer_expired'),
                    min(COALESCE(received_at, at)) FILTER (WHERE step = 'raised'),
                    min(COALESCE(received_at, at)) FILTER (WHERE step = 'test_call'))
               AS raised_at,
           min(COALESCE(received_at, at)) FILTER (WHERE step IN ('raised', 'test_call'))
               AS first_received,
           (array_agg(detail->>'kind' ORDER BY at, journal_seq)
               FILTER (WHERE step IN ('raised', 'test_call')))[1] AS kind,
           min(priority) AS priority,
           NOT bool_or(step = 'raised') AS test_call,
           min(at) FILTER (WHERE step IN ('offered', 'escalated')) AS deploy_at,
           min(at) FILTER (WHERE step IN ('accepted', 'accepted_one')) AS accepted_at,
           min(at) FILTER (WHERE step = 'arrived') AS arrived_at,
           min(at) FILTER (WHERE step = 'resolved') AS resolved_at,
           (array_agg(detail->>'outcome' ORDER BY at, journal_seq)
               FILTER (WHERE step = 'resolved'))[1] AS outcome,
           min(at) FILTER (WHERE step = 'cancelled') AS cancelled_at
      FROM steps
     GROUP BY alarm_id
),
alarms AS (
    SELECT l.*,
           CASE WHEN l.test_call THEN 'test'
                WHEN l.cancelled_at IS NOT NULL THEN 'cancelled'
                WHEN l.outcome = 'false_alarm' THEN 'false'
           END AS excluded,
           CASE WHEN %(night_start)s::time < %(night_end)s::time
                THEN lt.t >= %(night_start)s::time AND lt.t < %(night_end)s::time
                ELSE lt.t >= %(night_start)s::time OR lt.t < %(night_end)s::time
           END AS night,
           date_trunc('week', l.raised_at AT TIME ZONE %(tz)s)::date AS week,
           (l.raised_at AT TIME ZONE %(tz)s)::date AS local_day,
           extract(epoch FROM l.accepted_at - l.raised_at) AS accept_s,
           extract(epoch FROM l.arrived_at - l.raised_at) AS arrive_s,
           extract(epoch FROM l.arrived_at - l.deploy_at) AS attend_s,
           extract(epoch FROM l.resolved_at - l.raised_at) AS resolve_s,
           t.a1, t.a2, t.d1, t.d2
      FROM lifecycle l
     CROSS JOIN LATERAL (SELECT (l.raised_at AT TIME ZONE %(tz)s)::time AS t) AS lt
      LEFT JOIN unnest(%(t_priority)s::text[], %(t_a1)s::int[], %(t_a2)s::int[],
                       %(t_d1)s::int[], %(t_d2)s::int[]) AS t(priority, a1, a2, d1, d2)
             ON t.priority = l.priority
     WHERE l.raised_at >= %(lo)s AND l.raised_at < %(hi)s
)"""

# The client an alarm is about: the Careline call-out's client reference, or the resident of
# the device whose event raised it (found by its receipt time; the device -> client map comes
# from the scheme file as two parallel arrays).
WITH_CLIENTS = """,
clients AS (
    SELECT a.*, COALESCE(co.resident_ref, dc.client_ref) AS client_ref
      FROM alarms a
      LEFT JOIN LATERAL (
          SELECT d.device_id FROM device_events d
           WHERE d.scheme = %(scheme)s AND d.received_at = a.first_received AND d.kind = a.kind
           LIMIT 1) AS dev ON true
      LEFT JOIN unnest(%(devices)s::text[], %(device_clients)s::text[])
             AS dc(device_id, client_ref) ON dc.device_id = dev.device_id
      LEFT JOIN LATERAL (
          SELECT c.resident_ref FROM careline_callouts c
           WHERE c.scheme = %(scheme)s AND c.received_at = a.first_received
           LIMIT 1) AS co ON a.kind = 'callout'
)"""

_COUNTED = "excluded IS NULL"
_PCTS = (("p50", "0.5"), ("p90", "0.9"), ("p95", "0.95"))
MEASURES = ("accept", "arrive", "attend", "resolve")


def _measure_columns() -> str:
    cols = []
    for m in MEASURES:
        for name, frac in _PCTS:
            cols.append(
                f"percentile_disc({frac}) WITHIN GROUP (ORDER BY {m}_s)"
                f" FILTER (WHERE {_COUNTED}) AS {m}_{name}"
            )
        cols.append(f"max({m}_s) FILTER (WHERE {_COUNTED}) AS {m}_max")
    return ",\n       ".join(cols)


# One row per group: everything, then by priority, event kind, night/day and local week.
FIGURES = (
    ALARMS
    + f"""
SELECT CASE WHEN GROUPING(priority) = 0 THEN 'priority'
            WHEN GROUPING(kind) = 0 THEN 'kind'
            WHEN GROUPING(night) = 0 THEN 'night'
            WHEN GROUPING(week) = 0 THEN 'week'
            ELSE 'all' END AS dimension,
       COALESCE(CASE WHEN GROUPING(priority) = 0 THEN priority
                     WHEN GROUPING(kind) = 0 THEN kind
                     WHEN GROUPING(night) = 0 THEN CASE WHEN night THEN 'night' ELSE 'day' END
                     WHEN GROUPING(week) = 0 THEN week::text
                     ELSE 'all' END, 'unknown') AS value,
       count(*) AS alarms,
       count(*) FILTER (WHERE excluded = 'test') AS test_calls,
       count(*) FILTER (WHERE excluded = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE excluded = 'false') AS false_alarms,
       count(*) FILTER (WHERE {_COUNTED}) AS counted,
       count(*) FILTER (WHERE {_COUNTED} AND deploy_at IS NOT NULL) AS deployed,
       count(accept_s) FILTER (WHERE {_COUNTED}) AS answered,
       count(arrive_s) FILTER (WHERE {_COUNTED}) AS arrived,
       count(resolve_s) FILTER (WHERE {_COUNTED}) AS resolved,
       {_measure_columns()},
       count(*) FILTER (WHERE {_COUNTED} AND accept_s <= a1) AS answer_met_1,
       count(*) FILTER (WHERE {_COUNTED} AND accept_s <= a2) AS answer_met_2,
       count(*) FILTER (WHERE {_COUNTED} AND attend_s <= d1) AS attend_met_1,
       count(*) FILTER (WHERE {_COUNTED} AND attend_s <= d2) AS attend_met_2
  FROM alarms
 GROUP BY GROUPING SETS ((), (priority), (kind), (night), (week))
 ORDER BY 1, 2"""
)

# Response-time distribution for the chart: counted alarms per minute of time to accept
# (the last bucket holds everything from 10 minutes on).
ACCEPT_HISTOGRAM = (
    ALARMS
    + f"""
SELECT least(floor(accept_s / 60), 10)::int AS minute, count(*) AS alarms
  FROM alarms WHERE {_COUNTED} AND accept_s IS NOT NULL
 GROUP BY 1 ORDER BY 1"""
)

KPI = (
    ALARMS
    + f"""
SELECT count(*) FILTER (WHERE excluded IS DISTINCT FROM 'test') AS alarms,
       count(*) FILTER (WHERE {_COUNTED} AND (kind = 'fall_detected'
                        OR outcome IN ('fall_no_injury_lifted', 'fall_injury_ambulance')))
           AS falls,
       count(*) FILTER (WHERE {_COUNTED} AND outcome = 'fall_injury_ambulance')
           AS falls_with_ambulance,
       count(*) FILTER (WHERE {_COUNTED} AND outcome IN ('fall_injury_ambulance',
                                                         'hospital_admission'))
           AS ambulance,
       count(*) FILTER (WHERE {_COUNTED} AND outcome = 'hospital_admission')
           AS hospital_admissions,
       count(*) FILTER (WHERE {_COUNTED} AND outcome = 'unable_to_gain_access')
           AS unable_to_gain_access,
       count(*) FILTER (WHERE {_COUNTED} AND kind = 'callout') AS emergency_callouts,
       count(*) FILTER (WHERE {_COUNTED} AND kind = 'callout' AND attend_s <= d1)
           AS callouts_met_1,
       count(*) FILTER (WHERE {_COUNTED} AND kind = 'callout' AND attend_s <= d2)
           AS callouts_met_2,
       count(*) FILTER (WHERE {_COUNTED} AND kind = 'callout' AND attend_s <= 86400)
           AS callouts_within_24h
  FROM alarms"""
)

KINDS = (
    ALARMS
    + f"""
SELECT COALESCE(kind, 'unknown') AS kind,
       count(*) FILTER (WHERE excluded IS DISTINCT FROM 'test') AS alarms,
       count(*) FILTER (WHERE {_COUNTED}) AS counted
  FROM alarms GROUP BY 1 ORDER BY 1"""
)

# A sleep-in carer's disturbances per night (the night named by the local date it began, as
# the engine counts them); more than two makes it a waking night (BCP 1.1.47).
WAKING_NIGHTS = """
SELECT detail->>'night' AS night, carer_id, count(*) AS disturbances
  FROM alarm_events
 WHERE scheme = %(scheme)s AND step = 'sleep_in_disturbance'
   AND at >= %(lo)s - interval '1 day' AND at < %(hi)s + interval '1 day'
   AND (detail->>'night')::date >= %(first_day)s AND (detail->>'night')::date < %(end_day)s
 GROUP BY 1, 2
HAVING count(*) > 2
 ORDER BY 1, 2"""

# Device faults raised in the period, one episode per (device, fault) until the fault is
# cleared (repeats before the clearing belong to the same episode), and how long mending took.
FAULTS = """
WITH f AS (
    SELECT at, target, code FROM notifications
     WHERE scheme = %(scheme)s AND kind = 'technical' AND at >= %(lo)s AND at < %(hi)s
       AND right(code, 8) <> '_cleared'
),
c AS (
    SELECT at, target, left(code, -8) AS code FROM notifications
     WHERE scheme = %(scheme)s AND kind = 'technical' AND at >= %(lo)s
       AND right(code, 8) = '_cleared'
),
episodes AS (
    SELECT f.target, f.code, min(f.at) AS began, cl.at AS mended
      FROM f
      LEFT JOIN LATERAL (SELECT min(c.at) AS at FROM c
                          WHERE c.target = f.target AND c.code = f.code AND c.at >= f.at)
             AS cl ON true
     GROUP BY f.target, f.code, cl.at
)
SELECT COALESCE(code, 'all') AS code, count(*) AS faults, count(mended) AS mended,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM mended - began))
           AS mend_p50_s,
       max(extract(epoch FROM mended - began)) AS mend_max_s
  FROM episodes
 GROUP BY ROLLUP (code)
 ORDER BY code NULLS FIRST"""

# Events the council must hear of by the next working day (Lewisham 4.3, Thurrock 11.1), from
# the outcome a carer recorded, or a fire-priority alarm (a major incident).
NOTIFIABLE = (
    ALARMS
    + WITH_CLIENTS
    + f"""
SELECT * FROM (
    SELECT alarm_id, raised_at, resolved_at, kind, priority, outcome, client_ref,
           CASE outcome
                WHEN 'hospital_admission' THEN 'hospital_admission'
                WHEN 'unable_to_gain_access' THEN 'unable_to_gain_access'
                WHEN 'not_at_home' THEN 'not_returning'
                WHEN 'fire_service_called' THEN 'major_incident'
                ELSE CASE WHEN priority = 'P0' THEN 'major_incident' END
           END AS category
      FROM clients WHERE {_COUNTED}
) AS n
 WHERE category IS NOT NULL
 ORDER BY raised_at, alarm_id"""
)

# Thurrock schedule 3: per client per week (weeks start on Monday, local time).
VISITS = (
    ALARMS
    + WITH_CLIENTS
    + """
SELECT COALESCE(client_ref, 'unknown') AS client_ref, week,
       count(*) FILTER (WHERE excluded IS NULL AND arrived_at IS NOT NULL
                        AND outcome IS DISTINCT FROM 'unable_to_gain_access'
                        AND outcome IS DISTINCT FROM 'not_at_home') AS actual,
       count(*) FILTER (WHERE excluded IS NULL AND outcome IN ('unable_to_gain_access',
                                                               'not_at_home')) AS frustrated,
       count(*) FILTER (WHERE excluded = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE excluded IS NULL AND arrived_at IS NULL) AS missed,
       count(*) FILTER (WHERE excluded IS DISTINCT FROM 'test') AS callouts,
       count(arrived_at) FILTER (WHERE excluded IS DISTINCT FROM 'test') AS visits,
       COALESCE(sum(extract(epoch FROM resolved_at - arrived_at))
                FILTER (WHERE excluded IS DISTINCT FROM 'test'), 0) AS duration_s,
       max(local_day) FILTER (WHERE excluded IS DISTINCT FROM 'test') AS last_day
  FROM clients
 WHERE excluded IS DISTINCT FROM 'test'
 GROUP BY 1, 2
 ORDER BY 1, 2"""
)
